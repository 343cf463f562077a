/**
 * The baseline of the completions bench: a bare Fastify app (no plugins, no logger, no auth)
 * whose one route does a transaction comparable in shape to an operation completion — lock a
 * row, update it, insert an event row and a log row, commit — on a pg pool of Loom's size.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { serveChild } from './child-process.ts';

const { databaseUrl, poolSize, port } = JSON.parse(process.argv[2] ?? '{}') as {
  databaseUrl: string;
  poolSize: number;
  port: number;
};

serveChild(async () => {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize });
  pool.on('error', () => undefined);
  const app = Fastify({ logger: false });
  app.post<{ Params: { id: string }; Body: { good: number } }>('/complete/:id', async (req, reply) => {
    const id = Number(req.params.id);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const row = await client.query<{ state: string; good: number }>(
        'SELECT state, good FROM bench_ops WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (row.rows[0]?.state !== 'Running') {
        await client.query('ROLLBACK');
        return reply.code(409).send({ error: 'not running' });
      }
      const good = row.rows[0].good + req.body.good;
      await client.query(
        `UPDATE bench_ops SET state = 'Completed', good = $2, completed_at = now() WHERE id = $1`,
        [id, good],
      );
      await client.query('INSERT INTO bench_events (op_id, kind, quantity) VALUES ($1, $2, $3)', [
        id,
        'good',
        req.body.good,
      ]);
      await client.query('INSERT INTO bench_log (entity_id, action, new_value) VALUES ($1, $2, $3)', [
        String(id),
        'operation.completed',
        JSON.stringify({ state: 'Completed', good }),
      ]);
      await client.query('COMMIT');
      return { id, state: 'Completed', good };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  });
  await app.listen({ host: '127.0.0.1', port });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await app.close();
      await pool.end();
    },
  };
});
