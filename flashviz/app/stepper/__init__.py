"""The Stepper page's parts: the step charts and their browser component, the problem sidebar,
uploads, code, quiz, exports, presentation mode.
"""
