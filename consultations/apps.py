from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "consultations"
    verbose_name = "Consultations"

    def ready(self):
        from consultations import attachments, cover_cache, held_claims

        attachments.connect()
        cover_cache.connect()
        held_claims.connect()
