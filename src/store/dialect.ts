/** The two metadata databases kiln speaks. Migrations branch on this only where SQL differs. */
export type Dialect = 'sqlite' | 'postgres';

/** Auto-incrementing integer key: SQLite's rowid alias, Postgres's serial. */
export function idColumnType(dialect: Dialect): 'integer' | 'serial' {
  return dialect === 'sqlite' ? 'integer' : 'serial';
}
