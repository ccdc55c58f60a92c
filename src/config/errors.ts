export type ConfigErrorCode = "CONFIG_SYNTAX" | "CONFIG_INVALID" | "CONFIG_MISSING";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
  ) {
    super(message);
  }
}
