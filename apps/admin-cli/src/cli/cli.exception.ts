/** Exit codes: 0 success; 1 usage or validation (fix the command); 2 the registry is unreachable or refused the token (fix the setup). */
export enum ExitCode {
  Ok = 0,
  Usage = 1,
  Unavailable = 2,
}

/** A failure the user can act on: printed as one line on stderr, then the process exits with `exitCode`. */
export class CliException extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode.Usage | ExitCode.Unavailable,
  ) {
    super(message);
  }

  static usage(message: string): CliException {
    return new CliException(message, ExitCode.Usage);
  }

  static unavailable(message: string): CliException {
    return new CliException(message, ExitCode.Unavailable);
  }
}
