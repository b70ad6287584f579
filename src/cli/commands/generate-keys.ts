/**
 * `voidrail router --generate-keys [--out DIR]`: new API keys and CURVE key pairs for a router, a
 * dealer and a client, and the command lines that use them. With --out the CURVE keys are
 * written as files (secret keys mode 0600) so that no secret has to appear in argv.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ApiKeyManager, curveKeyPair } from "../../index.ts";
import { CliError } from "../errors.ts";

const ROLES = ["router", "dealer", "client"] as const;

export function generateKeys(outDir: string | undefined): void {
  const dealerKey = ApiKeyManager.generateKey("dealer");
  const clientKey = ApiKeyManager.generateKey("client");
  const pairs = Object.fromEntries(ROLES.map((role) => [role, curveKeyPair()])) as Record<
    (typeof ROLES)[number],
    ReturnType<typeof curveKeyPair>
  >;
  const dir = outDir === undefined ? undefined : resolve(outDir);
  const secretFile = (role: string) => (dir === undefined ? `${role}.secret` : join(dir, `${role}.secret`));
  if (dir !== undefined) writeKeyFiles(dir, pairs);

  console.log(`dealer key: ${dealerKey}`);
  console.log(`client key: ${clientKey}`);
  console.log("");
  console.log(`voidrail router --require-auth --dealer-keys ${dealerKey} --client-keys ${clientKey}`);
  console.log(`voidrail dealer --module ./services.ts --api-key ${dealerKey}`);
  console.log(`voidrail client --list --api-key ${clientKey}`);
  console.log("");
  for (const role of ROLES) {
    console.log(`CURVE ${role} public key: ${pairs[role].publicKey}`);
    console.log(`CURVE ${role} secret key: ${dir === undefined ? pairs[role].secretKey : `in ${secretFile(role)}`}`);
  }
  console.log("");
  if (dir === undefined) console.log("# Save each secret key alone in a file readable only by its owner (chmod 600), e.g. router.secret:");
  console.log(
    `voidrail router --curve-secret-key-file ${secretFile("router")} --curve-allow-dealers ${pairs.dealer.publicKey} --curve-allow-clients ${pairs.client.publicKey}`,
  );
  console.log(
    `voidrail dealer --module ./services.ts --curve-server-key ${pairs.router.publicKey} --curve-secret-key-file ${secretFile("dealer")}`,
  );
  console.log(`voidrail client --list --curve-server-key ${pairs.router.publicKey} --curve-secret-key-file ${secretFile("client")}`);
}

function writeKeyFiles(dir: string, pairs: Record<string, { publicKey: string; secretKey: string }>): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [role, pair] of Object.entries(pairs)) {
      const secret = join(dir, `${role}.secret`);
      if (existsSync(secret)) throw new CliError(`${secret} exists: not overwriting a key (choose another --out)`, 2);
      writeFileSync(secret, `${pair.secretKey}\n`, { mode: 0o600, flag: "wx" });
      // The umask may have widened nothing, but chmod makes the mode exact whatever it is.
      chmodSync(secret, 0o600);
      writeFileSync(join(dir, `${role}.public`), `${pair.publicKey}\n`, { mode: 0o600 });
      chmodSync(join(dir, `${role}.public`), 0o600);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot write keys to --out ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 1);
  }
}
