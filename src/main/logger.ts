import pino, { type Logger } from 'pino';

/** Paths never logged: credentials and session material (RELIABILITY.md: no secret in a log). */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.adminPassword',
  '*.databaseUrl',
  '*.erpOutboundToken',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '***' }, base: { service: 'loom' } }, destination);
}
