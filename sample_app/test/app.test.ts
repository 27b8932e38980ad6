import request from "supertest";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { loadBuildInfo } from "../src/build-info";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/logger";
import pkg from "../package.json";

const logger = createLogger("silent");

describe("GET /", () => {
  it("reports name and version from package.json", async () => {
    const res = await request(createApp({ logger })).get("/");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      name: "sample-app",
      version: pkg.version,
      message: "Hello from sample-app!",
      endpoints: ["/", "/healthz", "/api/items"],
    });
  });
});

describe("GET /healthz", () => {
  it("returns ok", async () => {
    const res = await request(createApp({ logger })).get("/healthz");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok" });
  });
});

describe("/api/items", () => {
  it("creates, lists, reads and deletes items", async () => {
    const app = createApp({ logger });

    const created = await request(app)
      .post("/api/items")
      .send({ name: "  widget ", quantity: 3, tags: ["blue"] });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: 1, name: "widget", quantity: 3, tags: ["blue"] });

    const list = await request(app).get("/api/items");
    expect(list.body).toEqual({ items: [created.body], count: 1 });

    expect((await request(app).get("/api/items/1")).body.name).toBe("widget");
    expect((await request(app).delete("/api/items/1")).status).toBe(204);
    expect((await request(app).get("/api/items/1")).status).toBe(404);
  });

  it("rejects invalid input with 400", async () => {
    const res = await request(createApp({ logger }))
      .post("/api/items")
      .send({ name: "", quantity: -1 });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("ValidationError");
    expect(res.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(["name", "quantity"]);
  });

  it("rejects malformed JSON with 400", async () => {
    const res = await request(createApp({ logger }))
      .post("/api/items")
      .set("content-type", "application/json")
      .send("{not json");
    expect(res.status).toBe(400);
  });

  it("returns 404 for unknown routes and ids", async () => {
    const app = createApp({ logger });
    expect((await request(app).get("/nope")).status).toBe(404);
    expect((await request(app).get("/api/items/abc")).status).toBe(404);
  });
});

describe("config", () => {
  it("applies defaults", () => {
    expect(loadConfig({})).toMatchObject({ HOST: "0.0.0.0", PORT: 3000, LOG_LEVEL: "info" });
  });

  it("rejects an invalid PORT", () => {
    expect(() => loadConfig({ PORT: "70000" })).toThrow(/PORT/);
  });
});

describe("build info", () => {
  it("falls back to package.json next to the source directory", () => {
    expect(loadBuildInfo()).toEqual({ name: pkg.name, version: pkg.version });
  });
});
