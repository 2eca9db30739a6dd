import { describeForecastService } from './helpers.js';

// Fastify 5 on a SQLite file: the durable queue and storage of the development profile.
describeForecastService('fastify', { database: 'sqlite' });
