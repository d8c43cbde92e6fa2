/** A set-up step that cannot go on: its message is the one line the user reads. */
export class SetupError extends Error {
  override name = 'SetupError';
}
