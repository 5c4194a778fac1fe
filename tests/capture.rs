//! Live capture: gate capture and gate run against example-service processes.
