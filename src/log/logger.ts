import { pino, type Logger, type DestinationStream } from "pino";

/** JSON logs; header values that carry credentials never reach them. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "dynroute" },
      redact: { paths: ["*.authorization", "*.['x-api-key']", "token", "tokens"], censor: "[redacted]" },
    },
    destination,
  );
}
