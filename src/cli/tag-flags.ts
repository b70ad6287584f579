/** `name=value` flags (`--tag` of dealer and serve, `--require` of client): checked as the protocol checks tags. */
import { Limits, TAG_NAME_PATTERN, TAG_VALUE_PATTERN } from "../protocol/index.ts";
import { CliError } from "./errors.ts";

/**
 * `--tag name=value` (repeatable) → tags; a name given twice is a mistake, not "the last wins".
 * `flag` names the option in messages (`--require` takes the same form).
 */
export function parseTags(flags: readonly string[], flag = "--tag"): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const text of flags) {
    const equals = text.indexOf("=");
    if (equals <= 0) throw new CliError(`${flag} must be name=value, e.g. ${flag} gpu=h200, got "${text}"`, 2);
    const name = text.slice(0, equals).trim();
    const value = text.slice(equals + 1).trim();
    if (!TAG_NAME_PATTERN.test(name))
      throw new CliError(`${flag} ${text}: the name must be letters, digits, _, . or - (starting with a letter or _)`, 2);
    if (!TAG_VALUE_PATTERN.test(value))
      throw new CliError(`${flag} ${text}: the value must be 1-128 printable characters without spaces`, 2);
    if (name in tags) throw new CliError(`${flag} ${name} is given twice`, 2);
    tags[name] = value;
  }
  if (Object.keys(tags).length > Limits.MAX_TAGS) throw new CliError(`at most ${Limits.MAX_TAGS} ${flag} flags`, 2);
  return tags;
}
