export {
  type AuditEntry,
  type AuditEvent,
  type AuditVerification,
  appendAudit,
  canonicalJson,
  GENESIS_HASH,
  readAuditLog,
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
