export { EVENTS_CHANNEL, type EventListener, type EventNotice, listenForEvents } from './event-listener.js';
export {
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from './signature.js';
export {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listDeliveries,
  listEvents,
  listSubscriptions,
  publishEvent,
  updateSubscription,
} from './sql-events.js';
export * from './types.js';
export { checkEventPatterns, checkWebhookUrl, eventMatches, WEBHOOK_LIMITS } from './validation.js';
export {
  DELIVERY_DEFAULTS,
  type DeliveryOptions,
  type DeliverySummary,
  deliverDueWebhooks,
  retryDelayMs,
  WebhookDeliverer,
  webhookBody,
} from './webhook-deliverer.js';
