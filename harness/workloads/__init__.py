"""Fixed timing yardsticks: workloads that are not models of any paper and must never change."""
