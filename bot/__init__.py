"""The Telegram bot: it checks what people send, records it, queues the work and handles feedback.

It never imports the captioning library or TensorFlow; the workers hold the model.
"""
