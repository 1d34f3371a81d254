/** An S3 client for the server an environment names (AWS_ENDPOINT_URL_S3, AWS_REGION, the key pair), path style. */
import { S3Client } from "@aws-sdk/client-s3";

export function s3ClientFor(env: Record<string, string | undefined>): S3Client {
  return new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3!,
    region: env.AWS_REGION!,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    maxAttempts: 1,
  });
}
