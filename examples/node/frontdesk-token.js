// Signed visitor tokens for frontdesk, in Node.js (its built-in crypto only; no npm packages).
//
// A token is  <expires_unix>.<hex HMAC-SHA256(token_secret, "<visitor>_<site>|<expires_unix>")>
// and goes into the widget's `token` option; frontdesk checks it when the visitor joins.
//
// It may also carry what the web app knows of its visitor (name, email, its own user id), which
// staff then see with the chat, marked as signed:
//   <expires_unix>.<details>.<hex HMAC-SHA256(token_secret, "<visitor>_<site>|<expires>|<details>")>
// where <details> is unpadded base64url of a compact JSON object with the keys name, email and
// user_id (in that order, each optional).
//
// The same test vectors as frontdesk's own code check this (tests/token_vectors.json):
// tests/integration/test_token_examples.py runs it on every one.
//
//   const { mintToken } = require("./frontdesk-token.js");
//   const token = mintToken(secret, "acme", visitorId, {
//     details: { name: user.name, email: user.email, user_id: String(user.id) },
//   });
"use strict";

const crypto = require("node:crypto");

/** frontdesk refuses longer values (Unicode characters). */
const LIMITS = Object.freeze({ name: 100, email: 254, user_id: 128 });

function hmacHex(secret, message) {
  return crypto.createHmac("sha256", secret).update(message, "utf8").digest("hex");
}

/** The known fields, in the signed order, checked against frontdesk's limits. */
function fields(details) {
  const out = {};
  for (const [key, max] of Object.entries(LIMITS)) {
    const value = details ? details[key] : undefined;
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") throw new TypeError(`${key} must be a string`);
    // A lone surrogate cannot be UTF-8 (with /u, a pair is one code point outside the class).
    if (/[\uD800-\uDFFF]/u.test(value)) throw new RangeError(`${key} is not valid Unicode`);
    // Counted in code points, as frontdesk counts (not UTF-16 units).
    if ([...value].length > max) throw new RangeError(`${key} is longer than ${max} characters`);
    out[key] = value;
  }
  return out;
}

/**
 * A token for `visitor` on `site`. Options: `ttl` (seconds from now, default a day), `expires`
 * (Unix seconds, instead of ttl), `details` ({ name, email, user_id }, each optional).
 * Throws for a value frontdesk would refuse (too long, not a string).
 */
function mintToken(secret, site, visitor, { ttl = 86400, expires, details } = {}) {
  const exp = Math.floor(expires ?? Date.now() / 1000 + ttl);
  const f = fields(details);
  if (Object.keys(f).length === 0) {
    return `${exp}.${hmacHex(secret, `${visitor}_${site}|${exp}`)}`;
  }
  // JSON.stringify escapes exactly what frontdesk's JSON escapes (quotes, backslash, controls).
  const part = Buffer.from(JSON.stringify(f), "utf8").toString("base64url");
  return `${exp}.${part}.${hmacHex(secret, `${visitor}_${site}|${exp}|${part}`)}`;
}

/**
 * The details a valid token carries ({} for the short form), or null when the token is
 * malformed, expired or not signed for this visitor and site. The signature is compared in
 * constant time (crypto.timingSafeEqual) before the details are decoded.
 */
function verifyToken(secret, site, visitor, token, now = Math.floor(Date.now() / 1000)) {
  const parts = String(token).trim().split(".");
  if (parts.length < 2 || parts.length > 3) return null;
  const [exp, sig] = [parts[0], parts[parts.length - 1].toLowerCase()];
  const part = parts.length === 3 ? parts[1] : null;
  if (!/^[0-9]{1,12}$/.test(exp) || !/^[0-9a-f]{64}$/.test(sig)) return null;
  if (part !== null && (part === "" || part.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(part))) return null;
  const message = part === null ? `${visitor}_${site}|${exp}` : `${visitor}_${site}|${exp}|${part}`;
  const good = Buffer.from(hmacHex(secret, message), "hex");
  if (!crypto.timingSafeEqual(good, Buffer.from(sig, "hex")) || Number(exp) <= now) return null;
  if (part === null) return {};
  try {
    const details = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    if (typeof details !== "object" || details === null || Array.isArray(details)) return null;
    const known = Object.fromEntries(Object.keys(LIMITS).filter((k) => k in details).map((k) => [k, details[k]]));
    return fields(known);
  } catch {
    return null;
  }
}

module.exports = { mintToken, verifyToken, LIMITS };
