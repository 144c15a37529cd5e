/**
 * The Content-Type an artifact download is sent with, as MLflow's server picks it
 * (mlflow/utils/mime_type_utils.py `_guess_mime_type`): MLflow's text extensions (and the
 * extension-less MLmodel and MLproject files) are text/plain, a few well-known types come
 * from Python's built-in mimetypes table, anything else is application/octet-stream.
 * Downloads also carry `X-Content-Type-Options: nosniff` and an attachment disposition, so a
 * browser never renders an artifact as a page of the server's origin.
 */
const TEXT_EXTENSIONS = new Set([
  'txt',
  'log',
  'err',
  'cfg',
  'conf',
  'cnf',
  'cf',
  'ini',
  'properties',
  'prop',
  'hocon',
  'toml',
  'yaml',
  'yml',
  'xml',
  'json',
  'js',
  'py',
  'py3',
  'csv',
  'tsv',
  'md',
  'rst',
  'MLmodel',
  'MLproject',
]);

/** Python's mimetypes defaults (no system files read) for the types artifacts commonly have. */
const KNOWN_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  bmp: 'image/bmp',
  svg: 'image/svg+xml',
  ico: 'image/vnd.microsoft.icon',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  pdf: 'application/pdf',
  zip: 'application/zip',
  tar: 'application/x-tar',
  h5: 'application/x-hdf5',
  wav: 'audio/x-wav',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
  webm: 'video/webm',
};

export function artifactContentType(artifactPath: string): string {
  const name = artifactPath.slice(artifactPath.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  // Python's splitext: a leading dot ('.env') is part of the name, not an extension.
  const extension = dot > 0 ? name.slice(dot + 1) : name;
  if (TEXT_EXTENSIONS.has(extension)) return 'text/plain';
  return (dot > 0 && KNOWN_TYPES[extension.toLowerCase()]) || 'application/octet-stream';
}
