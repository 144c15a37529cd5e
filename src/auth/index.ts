export {
  type AccessDecision,
  checkAccess,
  formatScope,
  type ParsedScope,
  parseScope,
  type Resource,
  roleAtLeast,
  scopeCovers,
} from './access.js';
export { localUser } from './actor.js';
export {
  type AuditEntry,
  type AuditEvent,
  type AuditSearch,
  type AuditVerification,
  appendAudit,
  canonicalJson,
  GENESIS_HASH,
  readAuditLog,
  searchAuditLog,
  verifyAuditChain,
} from './audit.js';
export {
  grantRole,
  hasRole,
  listRoleGrants,
  parseRole,
  ROLES,
  type Role,
  type RoleGrant,
  revokeRole,
  scopeMatches,
} from './roles.js';
export {
  countTokens,
  createToken,
  listTokens,
  revokeToken,
  type TokenInfo,
  type TokenVerification,
  TokenVerifier,
} from './tokens.js';
