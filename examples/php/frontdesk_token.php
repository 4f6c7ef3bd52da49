<?php
/**
 * Signed visitor tokens for frontdesk, in plain PHP (php-cli's standard functions only).
 *
 * A token is  <expires_unix>.<hex HMAC-SHA256(token_secret, "<visitor>_<site>|<expires_unix>")>
 * and goes into the widget's `token` option; frontdesk checks it when the visitor joins.
 *
 * It may also carry what the web app knows of its visitor (name, email, its own user id), which
 * staff then see with the chat, marked as signed:
 *   <expires_unix>.<details>.<hex HMAC-SHA256(token_secret, "<visitor>_<site>|<expires>|<details>")>
 * where <details> is unpadded base64url of a compact JSON object with the keys name, email and
 * user_id (in that order, each optional).
 *
 * The same test vectors as frontdesk's own code check this (tests/token_vectors.json):
 * tests/integration/test_token_examples.py runs it on every one.
 *
 *   require __DIR__ . '/frontdesk_token.php';
 *   $token = frontdesk_mint_token($secret, 'acme', $visitorId, [
 *       'details' => ['name' => $user->name, 'email' => $user->email, 'user_id' => (string) $user->id],
 *   ]);
 */

declare(strict_types=1);

/** frontdesk refuses longer values (Unicode characters). */
const FRONTDESK_TOKEN_LIMITS = ['name' => 100, 'email' => 254, 'user_id' => 128];

/**
 * A token for $visitor on $site. Options: 'ttl' (seconds from now, default a day), 'expires'
 * (Unix seconds, instead of ttl), 'details' (['name' => ..., 'email' => ..., 'user_id' => ...],
 * each optional; null or missing keys are left out).
 *
 * @throws InvalidArgumentException for a value frontdesk would refuse (too long, not UTF-8)
 */
function frontdesk_mint_token(string $secret, string $site, string $visitor, array $options = []): string
{
    $exp = (int) ($options['expires'] ?? (time() + (int) ($options['ttl'] ?? 86400)));
    $fields = frontdesk_token_fields($options['details'] ?? []);
    if ($fields === []) {
        return $exp . '.' . hash_hmac('sha256', "{$visitor}_{$site}|{$exp}", $secret);
    }
    $part = frontdesk_b64url(frontdesk_token_json($fields));
    return $exp . '.' . $part . '.' . hash_hmac('sha256', "{$visitor}_{$site}|{$exp}|{$part}", $secret);
}

/**
 * The details a valid token carries (an empty array for the short form), or null when the
 * token is malformed, expired or not signed for this visitor and site. The signature is
 * compared in constant time (hash_equals) before the details are decoded.
 */
function frontdesk_verify_token(string $secret, string $site, string $visitor, string $token, ?int $now = null): ?array
{
    $parts = explode('.', trim($token));
    if (count($parts) < 2 || count($parts) > 3) {
        return null;
    }
    $exp = $parts[0];
    $sig = strtolower($parts[count($parts) - 1]);
    $part = count($parts) === 3 ? $parts[1] : null;
    if (preg_match('/^[0-9]{1,12}$/D', $exp) !== 1 || preg_match('/^[0-9a-f]{64}$/D', $sig) !== 1
        || ($part !== null && ($part === '' || strlen($part) > 2048))) {
        return null;
    }
    $message = $part === null ? "{$visitor}_{$site}|{$exp}" : "{$visitor}_{$site}|{$exp}|{$part}";
    if (!hash_equals(hash_hmac('sha256', $message, $secret), $sig) || (int) $exp <= ($now ?? time())) {
        return null;
    }
    if ($part === null) {
        return [];
    }
    $json = base64_decode(strtr($part, '-_', '+/'), true);
    // An object, as frontdesk requires (decoded to an array, [1,2] would pass for one).
    $details = $json === false ? null : json_decode($json);
    if (!($details instanceof stdClass)) {
        return null;
    }
    try {
        return frontdesk_token_fields(array_intersect_key(get_object_vars($details), FRONTDESK_TOKEN_LIMITS));
    } catch (InvalidArgumentException $e) {
        return null;
    }
}

/** The known fields, in the signed order, checked against frontdesk's limits. */
function frontdesk_token_fields(array $details): array
{
    $fields = [];
    foreach (FRONTDESK_TOKEN_LIMITS as $key => $max) {
        if (!isset($details[$key])) {
            continue;
        }
        if (!is_string($details[$key])) {
            throw new InvalidArgumentException("$key must be a string");
        }
        $value = $details[$key];
        // Counted in code points, as frontdesk counts (preg with /u also rejects bad UTF-8).
        $chars = preg_match_all('/./su', $value);
        if ($chars === false) {
            throw new InvalidArgumentException("$key is not valid UTF-8");
        }
        if ($chars > $max) {
            throw new InvalidArgumentException("$key is longer than $max characters");
        }
        $fields[$key] = $value;
    }
    return $fields;
}

/** Compact JSON as frontdesk writes it: UTF-8 and "/" unescaped, controls escaped. */
function frontdesk_token_json(array $fields): string
{
    return json_encode(
        $fields,
        JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_LINE_TERMINATORS | JSON_THROW_ON_ERROR
    );
}

function frontdesk_b64url(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}
