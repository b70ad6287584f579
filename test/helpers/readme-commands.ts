/**
 * The `voidrail` command lines of the README's "Command line" section, so that the e2e tests run
 * exactly what the README shows and notice a line they do not run.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./voidrail-cli.ts";

export interface ShellCommand {
  /** `NAME=value` words before the command. */
  env: Record<string, string>;
  /** The words after `voidrail`. */
  args: string[];
}

/**
 * Splits one shell line into words: '…' and "…" quoting, backslash escapes outside single
 * quotes, and a `#` word ends the line. Returns the words and where the comment (if any) began.
 */
export function shellWords(line: string): { words: string[]; end: number } {
  const words: string[] = [];
  let word: string | null = null;
  let i = 0;
  for (; i < line.length; i++) {
    const char = line[i];
    if (/\s/.test(char)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (char === "#" && word === null) {
      break;
    } else if (char === "'") {
      const close = line.indexOf("'", i + 1);
      if (close === -1) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? "") + line.slice(i + 1, close);
      i = close;
    } else if (char === '"') {
      let text = "";
      for (i++; i < line.length && line[i] !== '"'; i++)
        text += line[i] === "\\" && /["\\$`]/.test(line[i + 1] ?? "") ? line[++i] : line[i];
      if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
      word = (word ?? "") + text;
    } else if (char === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i];
    } else {
      word = (word ?? "") + char;
    }
  }
  if (word !== null) words.push(word);
  return { words, end: i };
}

/** Parses `[NAME=value ...] voidrail args...`; undefined when the line runs something else. */
export function parseVoidrailLine(line: string): { command: ShellCommand; text: string } | undefined {
  const { words, end } = shellWords(line);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split("=");
    env[name] = value.join("=");
  }
  if (words[0] !== "voidrail") return undefined;
  return { command: { env, args: words.slice(1) }, text: line.slice(0, end).trim() };
}

/** Every `voidrail` line inside a ```sh block of the README's "## Command line" section, comments cut. */
export function readmeCommandLines(readmePath = join(REPO_ROOT, "README.md")): string[] {
  const text = readFileSync(readmePath, "utf8");
  const start = text.indexOf("\n## Command line\n");
  if (start === -1) throw new Error(`${readmePath} has no "## Command line" section`);
  const next = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, next === -1 ? undefined : next);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1].split("\n")) {
      const parsed = parseVoidrailLine(line);
      if (parsed) lines.push(parsed.text);
    }
  }
  return lines;
}

/**
 * The README's command lines, handed out to tests by their exact text: asking for a line the
 * README does not have fails, and `notRun()` lists the README lines no test asked for.
 */
export class ReadmeCommands {
  private readonly lines = new Set(readmeCommandLines());
  private readonly run = new Set<string>();

  get(line: string): ShellCommand {
    if (!this.lines.has(line)) throw new Error(`the README's Command line section has no line: ${line}`);
    this.run.add(line);
    return parseVoidrailLine(line)!.command;
  }

  notRun(): string[] {
    return [...this.lines].filter((line) => !this.run.has(line));
  }

  get size(): number {
    return this.lines.size;
  }
}
