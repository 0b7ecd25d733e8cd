// Load generator for `python -m bench api`: keep-alive HTTP/1.1 GETs over raw sockets.
//
// Reads {host, port, key, paths, concurrency} as JSON on stdin; asks every path once with
// `concurrency` connections, each sending its next request when the previous answer is in;
// prints {seconds, samples: [[path index, status, x-cache, ms], ...]} on stdout.
//
// Why not Python: an asyncio client spends ~0.3 ms of CPU per request, so at concurrency 32
// on two cores it measured its own queue, not the API. This one spends a few microseconds.
import net from 'node:net';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));
const { host, port, key, paths, concurrency } = input;
const samples = [];
let next = 0;

function worker() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    let buffer = Buffer.alloc(0);
    let index = -1;
    let began = 0n;

    function ask() {
      if (next >= paths.length) {
        socket.end();
        resolve();
        return;
      }
      index = next++;
      began = process.hrtime.bigint();
      socket.write(`GET ${paths[index]} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key}\r\n\r\n`);
    }

    socket.on('connect', ask);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      const headEnd = buffer.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buffer.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 'NaN');
      if (Number.isNaN(length)) {
        reject(new Error(`no content-length in answer to ${paths[index]}: ${head}`));
        return;
      }
      if (buffer.length < headEnd + 4 + length) return;
      const ms = Number(process.hrtime.bigint() - began) / 1e6;
      const status = Number(head.slice(9, 12));
      const cache = (/\r\nx-cache: *(\w+)/i.exec(head)?.[1] ?? '-').toUpperCase();
      samples.push([index, status, cache, ms]);
      buffer = buffer.subarray(headEnd + 4 + length);
      ask();
    });
  });
}

const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(JSON.stringify({ seconds, samples }));
