/** A trace lists worker thread that fails before it is ready (trace.test.ts: restarts back off). */
throw new Error('this thread cannot start');
