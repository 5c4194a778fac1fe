//! Live A/A and A/B comparisons of example-service processes through gate diff.
