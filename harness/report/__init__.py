"""From the typed run to Markdown, CSV, charts and HTML: pure views and one writer."""
