import { describeForecastService } from './helpers.js';

// Plain node:http on the test profile (storage and queue in memory).
describeForecastService('http-node', { database: 'memory' });
