import { Router } from "express";
import { z } from "zod";

export const itemInputSchema = z.object({
  name: z.string().trim().min(1).max(100),
  quantity: z.number().int().min(0).max(1_000_000).default(1),
  tags: z.array(z.string().trim().min(1).max(30)).max(10).default([]),
});

export type ItemInput = z.infer<typeof itemInputSchema>;

export interface Item extends ItemInput {
  id: number;
}

const idParamSchema = z.coerce.number().int().positive();

/** In-memory store; one per app instance so tests stay isolated. */
export class ItemStore {
  private readonly items = new Map<number, Item>();
  private nextId = 1;

  list(): Item[] {
    return [...this.items.values()];
  }

  get(id: number): Item | undefined {
    return this.items.get(id);
  }

  create(input: ItemInput): Item {
    const item: Item = { id: this.nextId++, ...input };
    this.items.set(item.id, item);
    return item;
  }

  delete(id: number): boolean {
    return this.items.delete(id);
  }
}

export function itemsRouter(store: ItemStore = new ItemStore()): Router {
  const router = Router();

  router.get("/", (_req, res) => {
    const items = store.list();
    res.json({ items, count: items.length });
  });

  router.post("/", (req, res) => {
    const parsed = itemInputSchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({
        error: "ValidationError",
        issues: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
      });
      return;
    }
    res.status(201).json(store.create(parsed.data));
  });

  router.get("/:id", (req, res) => {
    const id = idParamSchema.safeParse(req.params.id);
    const item = id.success ? store.get(id.data) : undefined;
    if (!item) {
      res.status(404).json({ error: "NotFound" });
      return;
    }
    res.json(item);
  });

  router.delete("/:id", (req, res) => {
    const id = idParamSchema.safeParse(req.params.id);
    if (!id.success || !store.delete(id.data)) {
      res.status(404).json({ error: "NotFound" });
      return;
    }
    res.status(204).end();
  });

  return router;
}
