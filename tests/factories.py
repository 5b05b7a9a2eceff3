"""factory_boy factories for the portal's models. Images are real JPEGs made by Pillow."""

from __future__ import annotations

import datetime
import hashlib
import io

import factory
import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from accounts.models import Clinic, User
from diagnosis.models import Case, Lesion, LesionImage, Prediction
from patients.models import Patient

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
PASSWORD = "correct horse battery staple"


def image_bytes(width: int = 64, height: int = 48, color=(180, 120, 90), fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def heatmap_layer_bytes(width: int = 64, height: int = 48) -> bytes:
    """A transparent heatmap layer (an indexed PNG with transparency, as the worker stores): a warm
    blob in the middle."""
    from inference.heatmap import overlay_layer_png

    cam = np.zeros((4, 4), dtype=np.float32)
    cam[1:3, 1:3] = 1.0
    return overlay_layer_png(Image.new("RGB", (width, height)), cam)


def webp_layer_bytes(width: int = 64, height: int = 48) -> bytes:
    """A heatmap layer as earlier versions stored it: WebP with alpha."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (width // 2, height // 2), (255, 80, 0, 200)), (width // 4, height // 4))
    buffer = io.BytesIO()
    layer.save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    address = "1 Market Street"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    role = User.Role.CLINIC_STAFF
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def clinics(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.clinics.set(extracted)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    identifier = factory.Sequence(lambda n: f"P-{n:05d}")
    full_name = factory.Sequence(lambda n: f"Patient Number{n}")
    date_of_birth = datetime.date(1970, 5, 17)
    sex = Patient.Sex.FEMALE
    skin_type = Patient.SkinType.III
    consent_given = True
    consent_recorded_at = factory.LazyFunction(timezone.now)
    # A generated creator works in the patient's clinic.
    created_by = factory.SubFactory(
        UserFactory, clinics=factory.LazyAttribute(lambda o: [o.factory_parent.factory_parent.clinic])
    )
    consent_recorded_by = factory.SelfAttribute("created_by")


class LesionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesion

    patient = factory.SubFactory(PatientFactory)
    body_site = Case.BodySite.BACK
    created_by = factory.SelfAttribute("patient.created_by")


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    patient = factory.SubFactory(PatientFactory)
    body_site = Case.BodySite.BACK
    # Each case starts a lesion of its own unless one is given.
    lesion = factory.SubFactory(
        LesionFactory, patient=factory.SelfAttribute("..patient"), body_site=factory.SelfAttribute("..body_site")
    )
    submitted_by = factory.SelfAttribute("patient.created_by")
    status = Case.Status.SUBMITTED

    class Params:
        referred = factory.Trait(status=Case.Status.REFERRED, referred_at=factory.LazyFunction(timezone.now))


class LesionImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LesionImage

    class Params:
        content = factory.LazyAttribute(lambda o: image_bytes(o.width, o.height))

    case = factory.SubFactory(CaseFactory)
    width = 64
    height = 48
    file = factory.LazyAttribute(lambda o: ContentFile(o.content, name="lesion.jpg"))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    content_type = "image/jpeg"
    uploaded_by = factory.SelfAttribute("case.submitted_by")


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prediction

    image = factory.SubFactory(LesionImageFactory)
    model_version = factory.Sequence(lambda n: f"test-model-{n}")
    probabilities = factory.LazyFunction(lambda: {name: (0.94 if name == "nv" else 0.01) for name in CLASSES})
    top_class = "nv"
    inference_ms = 12.5
    heatmap = None

    class Params:
        with_layer = factory.Trait(
            heatmap=factory.LazyAttribute(
                lambda o: ContentFile(heatmap_layer_bytes(o.image.width, o.image.height), name="layer.png")
            )
        )
        with_webp_layer = factory.Trait(  # a layer as versions before the indexed PNG stored it
            heatmap=factory.LazyAttribute(
                lambda o: ContentFile(webp_layer_bytes(o.image.width, o.image.height), name="heatmap.webp")
            )
        )
        with_heatmap = factory.Trait(
            heatmap=factory.LazyFunction(
                lambda: ContentFile(image_bytes(64, 48, (255, 0, 0), "PNG"), name="heatmap.png")
            )
        )


def referral_row(*, case, source="model", urgency="routine", reason="", referred_by=None, sample_rate=None, **_ignored):
    """A referral row for a case already in status referred (its referred_at kept), without the workflow."""
    from triage.models import Referral
    from triage.workflow import _due

    referred_at = case.referred_at or timezone.now()
    return Referral.objects.create(
        case=case,
        clinic_id=case.patient.clinic_id,
        source=source,
        urgency=urgency,
        reason=reason,
        referred_by=referred_by,
        referred_at=referred_at,
        due_at=_due(referred_at, urgency, source),
        sample_rate=sample_rate,
    )
