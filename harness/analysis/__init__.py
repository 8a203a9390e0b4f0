"""Analyses of trained networks beyond accuracy: attention vs. object scale ([P] §4.4, Figs. 3–4).

``attention`` extracts the SK units' attention (torch); ``scale_claims`` summarises it into the paper's claims
(numpy / scipy only, so reports use it without torch).
"""
