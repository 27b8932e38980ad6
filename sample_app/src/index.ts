import { createApp } from "./app";
import { loadBuildInfo } from "./build-info";
import { ConfigError, loadConfig } from "./config";
import { createLogger } from "./logger";

function main(): void {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    createLogger().fatal({ issues: err instanceof ConfigError ? err.issues : undefined }, String(err));
    process.exit(1);
  }

  const logger = createLogger(config.LOG_LEVEL);
  const buildInfo = loadBuildInfo();
  const app = createApp({ logger, buildInfo });

  const server = app.listen(config.PORT, config.HOST, () => {
    logger.info(
      { host: config.HOST, port: config.PORT, env: config.NODE_ENV, version: buildInfo.version },
      "server listening",
    );
  });

  // As PID 1 in a container, node gets no default signal handling: close explicitly.
  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, "shutting down");

    const timer = setTimeout(() => {
      logger.error("graceful shutdown timed out, forcing exit");
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();

    server.close((err) => {
      if (err) {
        logger.error({ err }, "error while closing server");
        process.exit(1);
      }
      logger.info("server closed");
      process.exit(0);
    });
    server.closeIdleConnections();
  };

  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main();
