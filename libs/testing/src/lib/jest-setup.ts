// Integration specs start real apps and wait on real servers (and outages); give them room.
jest.setTimeout(60_000);
