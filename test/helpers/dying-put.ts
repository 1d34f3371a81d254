/**
 * A client that starts a PUT of 1,000,000 bytes, sends 300,000 and then waits to be killed (test/unit/local-s3):
 * what a SIGKILLed archiver leaves on the wire. Settings from the environment: the local S3's, and PUT_KEY.
 */
import { Readable } from "node:stream";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { s3ClientFor } from "./s3-client.js";

const env = process.env;
// The test runner also loads every file under test/ on its own: without PUT_KEY there is nothing to do.
if (env.PUT_KEY) await dyingPut();

async function dyingPut(): Promise<void> {
  const client = s3ClientFor(env);
  let sent = false;
  const body = new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(Buffer.alloc(300_000, 7));
      process.stdout.write("sent\n");
    },
  });
  await client.send(
    new PutObjectCommand({
      Bucket: "b",
      Key: env.PUT_KEY!,
      Body: body,
      ContentLength: 1_000_000,
      IfNoneMatch: "*",
    }),
  );
}
