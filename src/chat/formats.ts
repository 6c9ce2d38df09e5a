/**
 * JSON Schema `format`s the grammar enforces, each as a regular expression
 * (regex.ts syntax, matched against the whole string) describing the subset
 * of the format it writes. Every string of each subset is valid for ajv-formats'
 * "full" validators (test/unit/json-formats.test.ts checks it on random
 * samples), and each keeps to the RFC named:
 *
 *   date-time  RFC 3339 §5.6 date-time: full-date "T" full-time, upper case T
 *              and Z, seconds 00–59 (no leap second), at most 9 fraction digits
 *   date       RFC 3339 full-date; February has 28 days (29 February is never written)
 *   time       RFC 3339 full-time (time zone required: Z or ±hh:mm)
 *   duration   RFC 3339 appendix A (ISO 8601): P…Y…M…D, T…H…M…S, or …W
 *   email      RFC 5321 dot-atom local part @ a domain of LDH labels (no quoted
 *              local parts, no IP literals)
 *   hostname   RFC 1123: up to 4 labels of at most 62 letters, digits and
 *              hyphens (not at either end of a label)
 *   ipv4       dotted quad without leading zeros
 *   ipv6       RFC 4291 full form: 8 groups of 1–4 hex digits (no :: or embedded IPv4)
 *   uri        RFC 3986 absolute URI with an authority: scheme "://" reg-name
 *              [":" port] path, optional "?" query and "#" fragment, percent-encoding
 *   uuid       RFC 4122 textual form: 8-4-4-4-12 hex digits
 */
const D = '[0-9]';
const HEX = '[0-9a-fA-F]';
const DATE = `${D}{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]${D}|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]${D}|30)|02-(?:0[1-9]|1${D}|2[0-8]))`;
const TIME = `(?:[01]${D}|2[0-3]):[0-5]${D}:[0-5]${D}(?:\\.${D}{1,9})?(?:Z|[+-](?:[01]${D}|2[0-3]):[0-5]${D})`;
const NUM = `${D}{1,9}`;
const DURATION_TIME = `T(?:${NUM}H(?:${NUM}M)?(?:${NUM}S)?|${NUM}M(?:${NUM}S)?|${NUM}S)`;
const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const SHORT_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?';
const OCTET = `(?:25[0-5]|2[0-4]${D}|1${D}${D}|[1-9]?${D})`;
/** Unreserved and sub-delims characters but "-", which each class puts last. */
const UNRESERVED = "A-Za-z0-9._~!$&'()*+,;=";
const PCT = `%${HEX}${HEX}`;

export const FORMATS: Readonly<Record<string, string>> = {
  'date-time': `${DATE}T${TIME}`,
  date: DATE,
  time: TIME,
  duration: `P(?:(?:${NUM}Y(?:${NUM}M)?(?:${NUM}D)?|${NUM}M(?:${NUM}D)?|${NUM}D)(?:${DURATION_TIME})?|${DURATION_TIME}|${NUM}W)`,
  email: `${ATOM}+(?:\\.${ATOM}+)*@(?:${LABEL}\\.)+${LABEL}`,
  hostname: `${SHORT_LABEL}(?:\\.${SHORT_LABEL}){0,3}`,
  ipv4: `(?:${OCTET}\\.){3}${OCTET}`,
  ipv6: `(?:${HEX}{1,4}:){7}${HEX}{1,4}`,
  uri: `[A-Za-z][A-Za-z0-9+.-]*://(?:[${UNRESERVED}-]|${PCT})+(?::${D}{1,5})?(?:/(?:[${UNRESERVED}:@-]|${PCT})*)*(?:\\?(?:[${UNRESERVED}:@/?-]|${PCT})*)?(?:#(?:[${UNRESERVED}:@/?-]|${PCT})*)?`,
  uuid: `${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}`,
};
