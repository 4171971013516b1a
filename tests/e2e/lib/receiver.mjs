// A webhook receiver for the tests: an HTTP(S) server on loopback that verifies every
// delivery with the `standardwebhooks` library (as a CRM would) and records it. What it
// answers is up to the test: `behave(req, delivery)` returns { status, headers, hang, destroy,
// delayMs }.

import http from 'node:http';
import https from 'node:https';

import { Webhook } from 'standardwebhooks';

// Starts a receiver. Options:
//   secrets: the "whsec_..." secrets to verify with (each must verify every delivery);
//   behave:  (req, delivery) => ({ status = 204, headers = {}, hang = false, destroy = false,
//            delayMs = 0 });
//   tls:     { key, cert } for HTTPS;
//   port:    the port (0: any).
// Resolves to { url(path), port, deliveries: [{ id, timestamp, signature, body, verified:
// [bool per secret], json }], close(), reopen() }.
export async function startReceiver({ secrets = [], behave = () => ({}), tls, port = 0 } = {}) {
  const deliveries = [];
  const hooks = secrets.map((s) => new Webhook(s));
  const sockets = new Set();
  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': req.headers['webhook-id'],
        'webhook-timestamp': req.headers['webhook-timestamp'],
        'webhook-signature': req.headers['webhook-signature'],
      };
      const verified = hooks.map((wh) => {
        try {
          wh.verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {}
      const delivery = {
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        headers,
        verified,
        json,
        path: req.url,
        at: Date.now(),
      };
      const answer = behave(req, delivery) ?? {};
      delivery.status = answer.status ?? 204;
      deliveries.push(delivery);
      if (answer.destroy) return req.socket.destroy();
      if (answer.hang) return;  // never answered: the sender's timeout
      const reply = () => {
        res.writeHead(delivery.status, answer.headers ?? {});
        res.end();
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
    });
  };
  let server;
  let boundPort = port;
  const listen = () =>
    new Promise((resolve, reject) => {
      server = tls ? https.createServer(tls, handler) : http.createServer(handler);
      server.keepAliveTimeout = 60_000;
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.once('error', reject);
      server.listen(boundPort, '127.0.0.1', () => {
        boundPort = server.address().port;
        resolve();
      });
    });
  await listen();
  const close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return {
    get port() {
      return boundPort;
    },
    url: (p = '/hooks') => `${tls ? 'https' : 'http'}://127.0.0.1:${boundPort}${p}`,
    deliveries,
    close,
    reopen: listen,
  };
}

// A fresh "whsec_" secret.
export function newSecret() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return `whsec_${Buffer.from(bytes).toString('base64')}`;
}
