"""Pulumi components for an application platform on AWS EKS.

One component per concern: `network.Network`, `cluster.Cluster`, and the add-ons and app
components built on them. Stack config is read and validated only in `config`; components take
plain argument classes.
"""
