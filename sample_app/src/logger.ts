import pino, { type Logger } from "pino";

export type { Logger };

/** JSON-lines logger on stdout, as container log collectors expect. */
export function createLogger(level: string = "info"): Logger {
  return pino({
    level,
    base: { service: "sample-app" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
    },
  });
}
