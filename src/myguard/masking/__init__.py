"""Result-set masking: strategies per value, row rewriting, lineage and the mask plan."""
