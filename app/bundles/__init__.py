"""Deployable bundles generated from a plan: Terraform, Helm, Airflow, purchase schedule."""
