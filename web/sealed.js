// End-to-end encrypted notifications in the browser (docs/encryption.md). The page is
// one of the user's devices: each of its subscriptions gets its own keys, made here
// with WebCrypto (a P-256 key pair and a 16-byte auth secret). The private key is made
// non-extractable and kept in this browser's IndexedDB: no script, this one included,
// can read it back, and it never leaves the browser. An entry encrypted for one of the
// page's subscriptions is opened here as RFC 8291 says (Web Push's message encryption
// over RFC 8188's aes128gcm), so a backend encrypts for the browser with any Web Push
// library, as for an agent.
//
// WebCrypto exists only in a secure context (https, or a page on localhost / 127.0.0.1):
// elsewhere the page holds no keys and shows encrypted notifications as such.
'use strict';

const Sealed = (() => {
  const subtle = window.isSecureContext && window.crypto ? window.crypto.subtle : undefined;
  const DB = 'tidings';
  const STORE = 'keys';
  const encoder = new TextEncoder();
  const CURVE = { name: 'ECDH', namedCurve: 'P-256' };
  // What an opened entry's cleartext came to, by entry: a notification's state changes
  // resend its entries, and an ECDH per read would be waste. Bounded.
  const opened = new Map();
  const OPENED_MAX = 500;

  const available = () => !!subtle && 'indexedDB' in window;

  // ---- base64url -------------------------------------------------------------------

  function toBase64url(bytes) {
    let text = '';
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // Padding allowed, as the service allows it; throws on anything else.
  function fromBase64url(text) {
    const plain = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(plain + '='.repeat((4 - (plain.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  // ---- the key store (IndexedDB) ---------------------------------------------------

  function database() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'unsid' });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  // Runs `work(store)` in one transaction; resolves with what its last request gave.
  async function transact(mode, work) {
    const db = await database();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        let result;
        const request = work(tx.objectStore(STORE));
        if (request) request.onsuccess = () => { result = request.result; };
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  const allKept = () => transact('readonly', (store) => store.getAll());

  async function make(unsid, host) {
    const pair = await subtle.generateKey(CURVE, false, ['deriveBits']);
    const publicRaw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    const auth = crypto.getRandomValues(new Uint8Array(16));
    return { unsid, host, privateKey: pair.privateKey, publicRaw, auth };
  }

  // The keys of each of `subscriptions` ([{unsid, host}]: this browser's own, all of
  // them), made for those that have none; the keys of any other subscription (one that
  // ended) are destroyed. Resolves to a Map unsid -> keys; empty where keys cannot be
  // held.
  async function keep(subscriptions) {
    if (!available()) return new Map();
    const keys = await kept();
    const wanted = new Set(subscriptions.map((s) => s.unsid));
    const made = [];
    for (const { unsid, host } of subscriptions) {
      if (!keys.has(unsid)) made.push(await make(unsid, host));
    }
    const ended = [...keys.keys()].filter((unsid) => !wanted.has(unsid));
    await transact('readwrite', (store) => {
      for (const entry of made) store.put(entry);
      for (const unsid of ended) store.delete(unsid);
    });
    for (const unsid of ended) keys.delete(unsid);
    for (const entry of made) keys.set(entry.unsid, entry);
    return keys;
  }

  // Every key this browser keeps (a Map unsid -> keys), making and destroying none.
  async function kept() {
    const keys = new Map();
    if (available()) for (const entry of await allKept()) keys.set(entry.unsid, entry);
    return keys;
  }

  // Destroys every key (the browser was signed out or revoked).
  async function forgetAll() {
    opened.clear();
    if (available()) await transact('readwrite', (store) => store.clear());
  }

  // A subscription's public half in the shape of a Web Push subscription's keys.
  const publicKeys = (kept) => ({ p256dh: toBase64url(kept.publicRaw), auth: toBase64url(kept.auth) });

  // ---- opening (RFC 8291 over RFC 8188) ------------------------------------------------

  async function hkdf(secret, salt, info, bytes) {
    const key = await subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
    const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, bytes * 8);
    return new Uint8Array(bits);
  }

  // The header of an aes128gcm body: salt, record size, the sender's public key.
  function header(body) {
    if (body.length < 21) throw new Error('shorter than its header');
    const size = new DataView(body.buffer, body.byteOffset + 16, 4).getUint32(0);
    const idLength = body[20];
    if (size < 18) throw new Error(`record size ${size} is under 18`);
    if (idLength !== 65) throw new Error(`key id of ${idLength} bytes, not 65`);
    if (body.length < 21 + idLength + 17) throw new Error('no record');
    return {
      salt: body.subarray(0, 16),
      size,
      sender: body.subarray(21, 21 + idLength),
      records: body.subarray(21 + idLength),
    };
  }

  // The content key and nonce base for `kept` and the sender's one-off key.
  async function secrets(kept, salt, sender) {
    const peer = await subtle.importKey('raw', sender, CURVE, false, []);
    const shared = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: peer }, kept.privateKey, 256));
    const info = concat(encoder.encode('WebPush: info\0'), kept.publicRaw, sender);
    const ikm = await hkdf(shared, kept.auth, info, 32);
    const cek = await hkdf(ikm, salt, encoder.encode('Content-Encoding: aes128gcm\0'), 16);
    const nonce = await hkdf(ikm, salt, encoder.encode('Content-Encoding: nonce\0'), 12);
    return { key: await subtle.importKey('raw', cek, 'AES-GCM', false, ['decrypt']), nonce };
  }

  // One record's cleartext without its padding; the last record ends with 2, the
  // others with 1 (so a body cut at a record's end is caught).
  async function record(key, nonce, index, sealedRecord, last) {
    const iv = nonce.slice();
    const view = new DataView(iv.buffer);
    view.setUint32(8, view.getUint32(8) ^ index);
    const plain = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv }, key, sealedRecord));
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end -= 1;
    if (end < 0 || plain[end] !== (last ? 2 : 1)) throw new Error('a record is cut short');
    return plain.subarray(0, end);
  }

  // The cleartext of an aes128gcm `body` sealed for `kept`, as text.
  async function decrypt(kept, body) {
    const { salt, size, sender, records } = header(body);
    const { key, nonce } = await secrets(kept, salt, sender);
    const parts = [];
    for (let at = 0, index = 0; at < records.length; at += size, index += 1) {
      const last = at + size >= records.length;
      parts.push(await record(key, nonce, index, records.subarray(at, at + size), last));
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(concat(...parts));
  }

  // The payload a cleartext holds: the JSON of a payload sent in the clear.
  function payloadOf(cleartext) {
    const inside = JSON.parse(cleartext);
    if (!inside || typeof inside !== 'object' || inside.encryptedContent !== undefined) {
      throw new Error('not a payload');
    }
    const { visualContent, rawContent } = inside;
    const visual = visualContent && typeof visualContent.title === 'string' && visualContent.title
      && (visualContent.body === undefined || typeof visualContent.body === 'string');
    if (visualContent !== undefined && !visual) throw new Error('visualContent without a title');
    if (rawContent !== undefined && typeof rawContent !== 'string') throw new Error('rawContent is not text');
    if (visualContent === undefined && rawContent === undefined) throw new Error('an empty payload');
    const payload = { encryptedContent: [] };
    if (visualContent !== undefined) payload.visualContent = { title: visualContent.title, body: visualContent.body };
    if (rawContent !== undefined) payload.rawContent = rawContent;
    return payload;
  }

  // `n` as this browser shows it, with `sealed` saying what became of its encrypted
  // content: 'opened' (its payload now the cleartext, `encryptedContent: []` as the
  // agent stores it), 'other' (no entry for this browser's keys) or 'failed' (its
  // entry does not open: tampered, cut, for other keys, or no payload inside; a warning
  // in the console, never shown). Sent in the clear: `n` as it came.
  async function open(n, keys) {
    const entries = n.payload && n.payload.encryptedContent;
    if (!Array.isArray(entries) || !entries.length) return n;
    const entry = entries.find((e) => {
      const kept = e && keys.get(e.unsid);
      return kept && kept.host === n.targetHostName && typeof e.content === 'string';
    });
    if (!entry) return { ...n, sealed: 'other' };
    try {
      let payload = opened.get(entry.content);
      if (!payload) {
        payload = payloadOf(await decrypt(keys.get(entry.unsid), fromBase64url(entry.content)));
        if (opened.size >= OPENED_MAX) opened.clear();
        opened.set(entry.content, payload);
      }
      return { ...n, payload, sealed: 'opened' };
    } catch (error) {
      console.warn(`tidings: notification ${n.id}: its encrypted content does not open here: ${error.message || error}`);
      return { ...n, sealed: 'failed' };
    }
  }

  return { available, keep, kept, forgetAll, publicKeys, open };
})();
