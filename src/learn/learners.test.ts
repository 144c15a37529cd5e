import { runLearnerSuite } from './learner.suite.js';
import { LEARNERS } from './learners.js';

// Every learner in the table, under the one suite: adding a learner adds its row here by itself.
for (const def of Object.values(LEARNERS)) runLearnerSuite(def);
