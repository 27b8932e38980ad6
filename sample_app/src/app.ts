import express, { type ErrorRequestHandler, type Express, type RequestHandler } from "express";
import { loadBuildInfo, type BuildInfo } from "./build-info";
import { createLogger, type Logger } from "./logger";
import { ItemStore, itemsRouter } from "./routes/items";

export interface AppOptions {
  logger?: Logger;
  buildInfo?: BuildInfo;
  store?: ItemStore;
}

function requestLogger(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on("finish", () => {
      const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
      logger.info(
        { method: req.method, url: req.originalUrl, status: res.statusCode, durationMs },
        "request completed",
      );
    });
    next();
  };
}

/** Builds the express application without binding a port (tests use it directly). */
export function createApp(options: AppOptions = {}): Express {
  const logger = options.logger ?? createLogger();
  const info = options.buildInfo ?? loadBuildInfo();

  const app = express();
  app.disable("x-powered-by");
  app.use(requestLogger(logger));
  app.use(express.json({ limit: "100kb" }));

  app.get("/", (_req, res) => {
    res.json({
      name: info.name,
      version: info.version,
      message: `Hello from ${info.name}!`,
      endpoints: ["/", "/healthz", "/api/items"],
    });
  });

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.use("/api/items", itemsRouter(options.store));

  app.use((_req, res) => {
    res.status(404).json({ error: "NotFound" });
  });

  const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === "number" ? err.status : 500;
    if (status >= 500) {
      logger.error({ err }, "unhandled error");
    }
    res.status(status).json({ error: status >= 500 ? "InternalServerError" : "BadRequest" });
  };
  app.use(errorHandler);

  return app;
}
