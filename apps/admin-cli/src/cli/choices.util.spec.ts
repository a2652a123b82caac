import { ADMIN_STATES, ENVIRONMENTS, HEALTH_STATUSES, MODEL_STATUSES } from '@switchboard/contracts';
import { ADMIN_STATE_CHOICES, ENVIRONMENT_CHOICES, HEALTH_STATUS_CHOICES, MODEL_STATUS_CHOICES } from './choices.util';

// The CLI restates these lists to start fast; this keeps them the contracts' words.
describe('admin-cli choices', () => {
  it.each([
    ['environments', ENVIRONMENT_CHOICES, ENVIRONMENTS],
    ['model statuses', MODEL_STATUS_CHOICES, MODEL_STATUSES],
    ['health statuses', HEALTH_STATUS_CHOICES, HEALTH_STATUSES],
    ['admin states', ADMIN_STATE_CHOICES, ADMIN_STATES],
  ])('offers exactly the contracts %s', (_name, choices, contract) => {
    expect([...choices].sort()).toEqual([...contract].sort());
  });
});
