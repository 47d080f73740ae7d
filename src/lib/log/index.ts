export {
  LogOutput,
  Logger,
  MemorySink,
  formatLevelSpec,
  parseLevelSpec,
  type Fields,
  type Format,
  type Level,
  type LevelSpec,
  type Sink,
} from "./logger.ts";
