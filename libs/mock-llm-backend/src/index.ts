export { startMockBackend } from './lib/mock-backend.service';
export type { MockBackend, MockBackendStats } from './lib/mock-backend.service';
export { MOCK_BACKEND_DEFAULTS, MOCK_NAME_PATTERN } from './lib/mock-backend.config';
export type { MockBackendOptions } from './lib/mock-backend.config';
export { DEFAULT_HEALTH_DELAY_MS, FaultValidationError, MOCK_FAULT_HEADERS, parseFaults } from './lib/faults.util';
export type { HealthFault, MockFaults } from './lib/faults.util';
export { EMBEDDING_DIMENSIONS } from './lib/completion.util';
