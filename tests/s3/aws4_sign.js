// Signs requests with the npm package aws4, an independent SigV4 implementation, so that
// s3_storage_test.cc can compare our signer with it on the same requests.
// stdin: JSON array of {method, host, path (encoded, with "?query"), headers, body, region,
// service, accessKeyId, secretAccessKey}; stdout: JSON array of Authorization header values.
'use strict';
const aws4 = require('aws4');

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((r) => {
    const signed = aws4.sign({
      method: r.method,
      host: r.host,
      path: r.path,
      headers: Object.assign({}, r.headers),
      body: r.body,
      service: r.service,
      region: r.region,
    }, { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey });
    return signed.headers.Authorization;
  });
  process.stdout.write(JSON.stringify(out));
});
