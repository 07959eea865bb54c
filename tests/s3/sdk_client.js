// An independent S3 client for the e2e tests (AWS SDK for JavaScript v3): reads what our driver
// wrote and writes what it must read. Endpoint, bucket and credentials come from S3_ENDPOINT,
// S3_BUCKET and the AWS_* variables.
//   node sdk_client.js get KEY            → object bytes on stdout
//   node sdk_client.js put KEY            ← stdin (one PutObject)
//   node sdk_client.js upload KEY PARTSZ  ← stdin (multipart via @aws-sdk/lib-storage)
//   node sdk_client.js list PREFIX        → JSON [{key, size}] (all pages)
//   node sdk_client.js uploads            → JSON [{key, uploadId}] pending multipart uploads
'use strict';
const { S3Client, GetObjectCommand, PutObjectCommand, ListObjectsV2Command,
        ListMultipartUploadsCommand } = require('@aws-sdk/client-s3');
const { Upload } = require('@aws-sdk/lib-storage');

const client = new S3Client({
  endpoint: process.env.S3_ENDPOINT,
  forcePathStyle: true,
  region: process.env.AWS_REGION || 'us-east-1',
});
const Bucket = process.env.S3_BUCKET;

async function stdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks);
}

async function main() {
  const [cmd, key, arg] = process.argv.slice(2);
  if (cmd === 'get') {
    const r = await client.send(new GetObjectCommand({ Bucket, Key: key }));
    process.stdout.write(Buffer.from(await r.Body.transformToByteArray()));
  } else if (cmd === 'put') {
    await client.send(new PutObjectCommand({ Bucket, Key: key, Body: await stdin() }));
  } else if (cmd === 'upload') {
    const up = new Upload({ client, params: { Bucket, Key: key, Body: await stdin() },
                            partSize: Number(arg), queueSize: 2, leavePartsOnError: false });
    await up.done();
  } else if (cmd === 'list') {
    const out = [];
    let ContinuationToken;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix: key || undefined,
                                                            ContinuationToken }));
      for (const o of r.Contents || []) out.push({ key: o.Key, size: o.Size });
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    process.stdout.write(JSON.stringify(out));
  } else if (cmd === 'uploads') {
    const r = await client.send(new ListMultipartUploadsCommand({ Bucket }));
    process.stdout.write(JSON.stringify((r.Uploads || []).map((u) => ({ key: u.Key,
                                                                         uploadId: u.UploadId }))));
  } else {
    throw new Error('unknown command ' + cmd);
  }
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
