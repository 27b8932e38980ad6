"""What an image holds, worked out from what the engine exports: no Docker calls but the save stream."""
