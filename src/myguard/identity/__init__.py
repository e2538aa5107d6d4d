"""Identity sources: who a client is, and which groups they belong to."""
