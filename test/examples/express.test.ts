import { describeForecastService } from './helpers.js';

// Express 5 on a SQLite file: the durable queue and storage of the development profile.
describeForecastService('express', { database: 'sqlite' });
