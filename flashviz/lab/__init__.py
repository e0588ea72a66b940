"""The teaching lab: the bug zoo, FA1, causal alignment, precision lessons, quiz, explanations,
input patterns, the problem and its budget. Imports only core.
"""
