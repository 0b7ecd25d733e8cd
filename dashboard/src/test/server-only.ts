// Stand-in for the `server-only` marker package under vitest, where importing it would throw.
export {};
