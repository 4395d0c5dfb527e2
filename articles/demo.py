"""Demo health articles (original text written for this portal) and the
function that loads them: `seed_articles`, called by the seed_demo command.

The texts are general information in a plain, careful tone. They are demo
content: a clinic replaces them with its own doctors' articles.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils.text import slugify

from articles.cache import bump_version
from articles.models import Article, ArticleStatus, ArticleViewDay, Source, Tag
from articles.services import next_review_due
from consultations.models import DoctorProfile, Specialty

NHS = ("NHS: Health A to Z", "https://www.nhs.uk/conditions/")
WHO = ("World Health Organization: fact sheets", "https://www.who.int/news-room/fact-sheets")
MEDLINE = ("MedlinePlus (U.S. National Library of Medicine)", "https://medlineplus.gov/")
CDC = ("Centers for Disease Control and Prevention", "https://www.cdc.gov/")
NICE = ("NICE Clinical Knowledge Summaries", "https://cks.nice.org.uk/")

ARTICLES: list[dict] = [
    {
        "slug": "fever-in-adults-when-to-see-a-doctor",
        "specialty": "general-medicine",
        "title": "Fever in adults: when is it a reason to see a doctor?",
        "summary": "Most fevers are the body fighting a short infection. Here is how to look after yourself "
        "and which signs mean you should get medical help.",
        "tags": ["Fever", "Infections", "Self-care"],
        "reviewed_days_ago": 40,
        "published_days_ago": 200,
        "views": 34,
        "sources": [NHS, MEDLINE, NICE],
        "body": """A raised temperature is one of the most common reasons people look for medical advice.
In adults, a temperature of 38 °C or more is usually called a fever.

## Why does the body run a fever?

A fever is part of the immune response. Chemical signals released while the body fights an
infection reset the brain's "thermostat" a little higher. Most fevers in adults come from viral
infections such as colds, flu or stomach bugs and settle within three days.

## How can I look after myself at home?

- Drink enough fluid: small, frequent sips if you feel sick.
- Rest, and wear light clothing rather than wrapping up.
- Paracetamol or ibuprofen can ease the discomfort; follow the dose on the pack and do not combine
  products that contain the same medicine.
- Check your temperature morning and evening and note it down.

Lowering the number on the thermometer is not the goal in itself: the aim is to feel well enough
to drink, rest and sleep.

## When should I contact a doctor?

Ask a doctor if:

- the fever lasts more than three days, or keeps coming back;
- you have a long-term condition, are pregnant, or take medicines that weaken the immune system;
- you have recently travelled to an area where malaria occurs;
- you have pain when passing urine, a painful cough, or ear or sinus pain that is getting worse.

## Which signs need urgent help?

Call your local emergency number if a fever comes with any of these:

- a stiff neck, a rash that does not fade when you press a glass against it, or sensitivity to light;
- confusion, unusual drowsiness or a seizure;
- difficulty breathing, or chest pain;
- cold, blotchy or very pale skin.

These can be signs of a serious infection that needs treatment within hours.
""",
    },
    {
        "slug": "cold-or-flu-how-to-tell",
        "specialty": "general-medicine",
        "title": "Cold or flu: how can you tell the difference?",
        "summary": "Colds and flu are both viral, but flu usually starts suddenly and knocks you off your feet. "
        "What to expect, and who should get help early.",
        "tags": ["Infections", "Self-care", "Vaccination"],
        # Demo of an expired medical review: the overdue sweep flags it.
        "reviewed_days_ago": 410,
        "published_days_ago": 430,
        "views": 21,
        "sources": [WHO, CDC, NHS],
        "body": """Every winter, many people wonder whether they have "just a cold" or the flu. Both are
caused by viruses and antibiotics do not help either of them, but they feel quite different.

## What are the typical signs of a cold?

- Symptoms come on gradually over a day or two.
- A blocked or runny nose, sneezing and a sore throat are the main complaints.
- You usually feel well enough to carry on with daily life.
- Most colds clear up within a week to ten days.

## What are the typical signs of flu?

- It starts suddenly, often within a few hours.
- A high temperature, aching muscles, chills and exhaustion are common.
- Many people feel too unwell to get out of bed.
- A dry cough and tiredness can last two weeks or more.

## How can I ease the symptoms?

- Rest and keep warm.
- Drink plenty of fluids.
- Use paracetamol or ibuprofen for aches and fever, following the label.
- Stay at home while you have a high temperature, to avoid passing the virus on.

## Who should get medical advice early?

People at higher risk of complications should contact a doctor within the first two days,
because antiviral treatment works best when started early. This includes:

- people aged 65 and over;
- pregnant women;
- people with heart or lung disease, diabetes, kidney disease or a weakened immune system.

## Can flu be prevented?

A yearly flu vaccine is the most effective protection and is recommended for higher-risk groups.
Washing your hands, and coughing or sneezing into a tissue, also reduce spread.
""",
    },
    {
        "slug": "adult-acne-causes-and-treatment",
        "specialty": "dermatology",
        "title": "What causes adult acne, and what actually helps?",
        "summary": "Acne does not always end with the teenage years. The common causes in adults and the "
        "treatments that have good evidence behind them.",
        "tags": ["Acne", "Skin care", "Hormones"],
        "reviewed_days_ago": 25,
        "published_days_ago": 120,
        "views": 57,
        "sources": [
            ("American Academy of Dermatology: acne resource centre", "https://www.aad.org/public/diseases/acne"),
            ("British Association of Dermatologists: patient information", "https://www.bad.org.uk/"),
            NHS,
        ],
        "body": """Acne that starts or continues after the age of 25 is common, especially in women. It tends
to appear on the lower face, jawline and neck.

## Why do adults get acne?

Acne develops when hair follicles become blocked with oil and dead skin cells and then inflamed.
In adults, several things can contribute:

- hormonal changes around periods, pregnancy or stopping hormonal contraception;
- polycystic ovary syndrome (PCOS), which can also cause irregular periods and extra hair growth;
- heavy or oily cosmetics and hair products;
- some medicines, such as certain steroids or anti-epileptic drugs;
- a family history of acne.

Stress may make existing acne worse, and diet plays a smaller role than many people think.

## What can I do myself?

- Wash the face twice a day with a mild cleanser and lukewarm water.
- Choose products labelled "non-comedogenic".
- Avoid squeezing spots, which increases the risk of scarring.
- Give any new treatment at least eight weeks before judging it.

## Which treatments work?

For mild acne, products with benzoyl peroxide, adapalene or azelaic acid are effective. For
moderate or persistent acne, a doctor may suggest:

- prescription creams that combine two active ingredients;
- a course of antibiotic tablets together with a cream;
- for some women, a combined contraceptive pill or spironolactone;
- isotretinoin for severe or scarring acne, prescribed and monitored by a dermatologist.

## When should I see a doctor?

Ask a doctor if over-the-counter treatments have not helped after two to three months, if spots
are deep and painful, if acne is leaving scars or dark marks, or if it is affecting your mood.
""",
    },
    {
        "slug": "sunscreen-explained",
        "specialty": "dermatology",
        "title": "Sunscreen explained: what do SPF and UVA stars mean?",
        "summary": "How to read a sunscreen label, how much to apply and why shade and clothing still matter.",
        "tags": ["Skin care", "Sun protection", "Prevention"],
        "reviewed_days_ago": 90,
        "published_days_ago": 300,
        "views": 18,
        "sources": [
            WHO,
            ("American Academy of Dermatology: sunscreen FAQs", "https://www.aad.org/"),
            ("Cancer Research UK: sun safety", "https://www.cancerresearchuk.org/"),
        ],
        "body": """Sunscreen is one part of sun protection, together with shade, clothing and a hat. Used well,
it lowers the risk of sunburn, skin ageing and skin cancer.

## What is the difference between UVA and UVB?

- **UVB** rays cause sunburn and play a large part in skin cancer.
- **UVA** rays go deeper, age the skin and also contribute to skin cancer.

A good sunscreen protects against both.

## What does SPF mean?

The sun protection factor measures protection against UVB. SPF 30 filters about 97% of UVB and
SPF 50 about 98%, when applied in the amount used in laboratory tests. Most people apply far less,
so the real protection is lower.

## How do I know it protects against UVA?

Look for a UVA logo in a circle, a star rating, or the words "broad spectrum", depending on where
you live.

## How much should I use?

- About six to eight teaspoons for the whole body of an adult.
- About half a teaspoon for the face and neck.
- Apply 15 to 30 minutes before going out, and again every two hours.
- Reapply straight after swimming, sweating or towelling, even if it says "water resistant".

## Is sunscreen enough on its own?

No. Stay in the shade around midday, cover up with clothing and a wide-brimmed hat, and wear
sunglasses. Babies under six months should be kept out of direct sun altogether.

## When should I show a mole to a doctor?

Ask a doctor if a mole changes shape, size or colour, bleeds, itches, or looks different from your
other moles, or if a new patch of skin does not heal within a few weeks.
""",
    },
    {
        "slug": "eyelid-surgery-questions-to-ask",
        "specialty": "plastic-surgery",
        "title": "Thinking about eyelid surgery? Questions to ask before you decide",
        "summary": "What blepharoplasty can and cannot do, how recovery usually goes and what to ask your surgeon.",
        "tags": ["Cosmetic surgery", "Eyes", "Recovery"],
        "reviewed_days_ago": 60,
        "published_days_ago": 150,
        "views": 12,
        "sources": [
            ("American Society of Plastic Surgeons: patient information", "https://www.plasticsurgery.org/"),
            ("British Association of Aesthetic Plastic Surgeons", "https://baaps.org.uk/"),
            NHS,
        ],
        "body": """Eyelid surgery (blepharoplasty) removes or repositions extra skin, muscle and fat from the
upper or lower eyelids. Some people have it for appearance; for others, heavy upper lids get in the
way of their vision.

## What can eyelid surgery change?

- Loose skin folds on the upper lids.
- Puffiness or bags under the eyes.
- Vision blocked by drooping upper lids.

It does not remove crow's feet, dark circles or a drooping brow, which need other treatments.

## Am I a good candidate?

You are more likely to be happy with the result if you are in good general health, do not smoke,
and have realistic expectations. Tell the surgeon about dry eyes, glaucoma, thyroid disease, high
blood pressure and any medicines that thin the blood.

## What should I ask the surgeon?

- Are you on the specialist register for plastic surgery, and how often do you do this operation?
- What result can I realistically expect, and can I see before-and-after photos of your patients?
- Will it be under local or general anaesthetic?
- What are the risks for me, and what happens if I need a further operation?
- What is included in the price, including follow-up visits?

## What is recovery like?

- Swelling and bruising are usual for one to two weeks.
- Cold compresses and sleeping with the head raised help.
- Stitches usually come out after about a week.
- Most people return to desk work after 10 to 14 days.

## Which problems need quick attention after surgery?

Seek help at once for increasing pain, sudden swelling of one eye, bleeding that does not stop or
any loss of vision: these are rare but urgent.
""",
    },
    {
        "slug": "caring-for-a-scar-after-surgery",
        "specialty": "plastic-surgery",
        "title": "How can I help a surgical scar heal well?",
        "summary": "Scars take a year or more to mature. Simple care in the first months makes a visible difference.",
        "tags": ["Scars", "Recovery", "Skin care"],
        "reviewed_days_ago": 150,
        "published_days_ago": 160,
        "views": 9,
        "sources": [
            ("American Society of Plastic Surgeons: scar revision", "https://www.plasticsurgery.org/"),
            NHS,
        ],
        "body": """Every cut through the full thickness of the skin heals with a scar. How it ends up looking
depends on your skin, the place on the body, the tension on the wound and the care it gets.

## How does a scar change over time?

- **First weeks:** the wound closes and the scar is usually red or pink.
- **Two to six months:** it may become raised, firmer and itchy as collagen is laid down.
- **Six to eighteen months:** it slowly flattens, softens and fades.

## What helps in the first weeks?

- Keep the wound clean and dry and follow the dressing advice you were given.
- Do not pick at scabs or stitches.
- Avoid stretching the area: no heavy lifting or intense exercise until your surgeon agrees.
- Do not smoke: smoking slows healing.

## What can I do once the wound has closed?

- Massage the scar gently with an unperfumed moisturiser for a few minutes a day.
- Silicone gel or silicone sheets, used daily for at least two to three months, can help flatten
  and soften scars.
- Protect the scar from the sun with clothing or SPF 30 or higher for at least a year, because
  sun exposure can darken it permanently.

## When should I ask a doctor?

- The wound becomes red, hot, swollen or leaks pus, or you develop a fever.
- The scar keeps growing beyond the original wound (this may be a keloid).
- It is painful, itchy or tight enough to limit movement.

Treatments such as steroid injections, pressure therapy, laser or scar revision surgery can help
troublesome scars, usually once they have matured.
""",
    },
    {
        "slug": "lower-back-pain-what-helps",
        "specialty": "orthopedics",
        "title": "Lower back pain: what helps, and when should you worry?",
        "summary": "Most back pain gets better within weeks. Staying active helps; a few warning signs need "
        "urgent attention.",
        "tags": ["Back pain", "Exercise", "Pain relief"],
        "reviewed_days_ago": 30,
        "published_days_ago": 250,
        "views": 64,
        "sources": [
            NICE,
            ("OrthoInfo, American Academy of Orthopaedic Surgeons", "https://orthoinfo.aaos.org/"),
            NHS,
            WHO,
        ],
        "body": """Lower back pain affects most adults at some point. In the large majority of cases it is
"non-specific": no serious cause is found and it improves within a few weeks.

## What usually causes it?

- Strain of muscles or ligaments after lifting, twisting or an unusual activity.
- Long periods of sitting or inactivity.
- Age-related changes of the spine, which are common on scans and often cause no pain at all.

## What helps most?

- **Keep moving.** Bed rest slows recovery. Carry on with daily activities as much as the pain
  allows, and walk little and often.
- **Pain relief** such as ibuprofen for a short time, if it is safe for you, helps you stay active.
- **Heat** from a warm pack can ease muscle spasm.
- **Exercise** once the worst has passed: stretching, walking, swimming, pilates or yoga.
- Physiotherapy or a structured exercise programme if pain lasts more than a few weeks.

## Do I need a scan?

Usually not. X-rays and MRI scans rarely change treatment for ordinary back pain and can show
harmless changes that cause worry. A doctor will suggest imaging if warning signs are present.

## Which signs need urgent help?

Go to an emergency department or call your local emergency number if back pain comes with:

- numbness around the genitals or buttocks;
- new difficulty passing urine or controlling your bladder or bowels;
- weakness in both legs, or legs that feel unsteady;

These can be signs of cauda equina syndrome, which needs treatment within hours.

## When should I see a doctor soon?

- Pain after a significant fall or accident.
- Unexplained weight loss, fever, or a history of cancer.
- Pain that is worse at night and does not ease with rest.
- No improvement after four to six weeks.
""",
    },
    {
        "slug": "sprained-ankle-first-aid-and-recovery",
        "specialty": "orthopedics",
        "title": "Sprained ankle: what should you do in the first days?",
        "summary": "First aid for a twisted ankle, how long recovery takes, and how to tell if it might be broken.",
        "tags": ["Sports injuries", "First aid", "Recovery"],
        "reviewed_days_ago": 120,
        "published_days_ago": 130,
        "views": 27,
        "sources": [
            ("OrthoInfo, American Academy of Orthopaedic Surgeons", "https://orthoinfo.aaos.org/"),
            NHS,
        ],
        "body": """An ankle sprain happens when the ligaments that hold the ankle joint are stretched or torn,
usually when the foot rolls inwards.

## What should I do straight away?

For the first two to three days:

- **Protect** the ankle from further injury; use crutches if walking is very painful.
- **Elevate** it above the level of your heart when you can.
- **Cool** it with an ice pack wrapped in a towel for up to 20 minutes every two to three hours.
- **Compress** it with a supportive bandage, loosening it at night.
- Avoid heat, alcohol and massage, which can increase swelling.

## When should I start moving it?

Gentle movement as soon as the pain allows speeds recovery. Start with circles and up-and-down
movements of the foot, then walk short distances. Balance exercises, such as standing on the
injured leg, lower the risk of spraining it again.

## How long does recovery take?

- Mild sprains: about two weeks.
- Moderate sprains: four to six weeks.
- Severe sprains with a complete tear: several months, sometimes with a brace.

## Could it be broken?

Get an X-ray assessment the same day if:

- you could not take four steps straight after the injury, or cannot now;
- there is tenderness directly over the bony bumps on either side of the ankle;
- the foot looks misshapen, or is numb, cold or blue.

## When should I see a doctor later on?

If the ankle keeps giving way, is still swollen after a few weeks, or pain stops you returning to
your usual activities, ask a doctor or physiotherapist.
""",
    },
    {
        "slug": "trouble-sleeping-practical-steps",
        "specialty": "psychiatry",
        "title": "Trouble sleeping? Practical steps that help insomnia",
        "summary": "Changing a few habits and how you think about sleep often works better than sleeping tablets.",
        "tags": ["Sleep", "Mental health", "Self-care"],
        "reviewed_days_ago": 75,
        "published_days_ago": 180,
        "views": 49,
        "sources": [
            NICE,
            ("National Institute of Mental Health", "https://www.nimh.nih.gov/"),
            NHS,
        ],
        "body": """Insomnia means regularly finding it hard to fall asleep, waking during the night or waking
too early, and feeling tired during the day. Short spells are common during stress; when it lasts
longer than three months it is called chronic insomnia.

## Why can't I sleep?

- Stress, worry or low mood.
- Irregular hours, shift work or long naps.
- Caffeine, nicotine or alcohol, especially in the evening.
- Pain, a frequent need to pass urine, or breathing problems at night.
- Some medicines.

## What can I change tonight?

- Get up at the same time every day, including weekends.
- Use the bed only for sleep and sex; no screens or work in bed.
- If you are awake for what feels like more than 20 minutes, get up, do something calm in dim
  light, and return to bed when sleepy.
- Avoid caffeine after midday and alcohol close to bedtime.
- Keep the bedroom dark, quiet and cool.
- Daylight and exercise during the day help, but finish hard exercise a few hours before bed.

## What treatment works best?

Cognitive behavioural therapy for insomnia (CBT-I) is the recommended first treatment. It helps
you change habits and thoughts that keep insomnia going and is available in person, in groups and
as guided digital programmes. Sleeping tablets can help for a few nights in a crisis but lose their
effect and can cause dependence, so they are not a long-term answer.

## When should I see a doctor?

- Poor sleep has lasted more than a month and is affecting your day.
- You snore loudly and someone has noticed pauses in your breathing.
- You feel low, anxious or hopeless.

If you have thoughts of harming yourself, contact your local emergency number or a crisis line now.
""",
    },
    {
        "slug": "recognising-depression",
        "specialty": "psychiatry",
        "title": "How do you recognise depression in yourself or someone close?",
        "summary": "Depression is more than feeling sad. The common signs, the treatments that work and how to "
        "start a conversation.",
        "tags": ["Mental health", "Depression"],
        "reviewed_days_ago": 45,
        "published_days_ago": 210,
        "views": 38,
        "sources": [
            WHO,
            ("National Institute of Mental Health", "https://www.nimh.nih.gov/"),
            NICE,
        ],
        "body": """Everyone has low days. Depression is different: the low mood or loss of interest lasts most
of the day, nearly every day, for at least two weeks, and it gets in the way of ordinary life.

## What are the common signs?

- Persistent sadness, emptiness or irritability.
- Losing interest or pleasure in things you used to enjoy.
- Sleeping much more or much less than usual.
- Tiredness and low energy.
- Changes in appetite or weight.
- Difficulty concentrating or making decisions.
- Feeling worthless or guilty.
- Thoughts that life is not worth living.

Some people notice mainly physical symptoms, such as aches or exhaustion, rather than sadness.

## What treatments help?

- **Talking therapies**, such as cognitive behavioural therapy or behavioural activation.
- **Antidepressant medicine**, often for moderate or severe depression, usually for at least six
  months after you feel better.
- **Regular activity**, time with other people and a steady daily routine support recovery.

Most people improve with treatment; the right option depends on how severe the depression is and
what you prefer.

## How can I help someone close to me?

- Tell them what you have noticed, kindly and without judging.
- Listen more than you advise.
- Encourage them to speak to a doctor, and offer practical help to do so.
- Ask directly about suicidal thoughts: asking does not put the idea in someone's head.

## When is it urgent?

If you or someone else is thinking about suicide or has made plans, call your local emergency
number or go to an emergency department now. Do not leave a person at immediate risk alone.
""",
    },
    {
        "slug": "fever-in-children-guide-for-parents",
        "specialty": "pediatrics",
        "title": "Fever in babies and children: what should parents do?",
        "summary": "How to measure a child's temperature, how to keep them comfortable, and the signs that "
        "mean you should get help straight away.",
        "tags": ["Fever", "Children", "Infections"],
        "reviewed_days_ago": 20,
        "published_days_ago": 100,
        "views": 71,
        "sources": [
            NICE,
            ("HealthyChildren.org, American Academy of Pediatrics", "https://www.healthychildren.org/"),
            NHS,
        ],
        "body": """Fever is very common in young children and is usually caused by a viral infection that gets
better on its own. A temperature of 38 °C or above counts as a fever.

## How should I take my child's temperature?

- Under 4 weeks old: an electronic thermometer in the armpit.
- Older babies and children: an electronic thermometer in the armpit, or an infrared ear or
  forehead thermometer.
- Feeling the forehead is not reliable.

## How can I keep my child comfortable?

- Offer regular drinks; breastfeeding babies can feed more often.
- Dress them in light clothing and keep the room at a comfortable temperature.
- Paracetamol or ibuprofen can be used if your child is distressed, at the dose for their age or
  weight. Do not give both at the same time unless a doctor advises it.
- Do not sponge your child with cold water.
- Keep them off nursery or school while they have a fever.

## When should I contact a doctor the same day?

- A baby under 3 months with a temperature of 38 °C or higher.
- A baby aged 3 to 6 months with 39 °C or higher.
- The fever has lasted five days or more.
- Your child is drinking much less, or has fewer wet nappies.
- You are worried, or your child seems to be getting worse.

## Which signs need an ambulance or emergency care?

- A rash that does not fade when you press a glass against it.
- A seizure (fit), especially the first one.
- Difficulty breathing, grunting, or pauses in breathing.
- Blue, grey or very pale lips or skin.
- A child who is floppy, very drowsy or difficult to wake.
- A stiff neck or a bulging soft spot on a baby's head.
""",
    },
    {
        "slug": "painful-periods-what-is-normal",
        "specialty": "gynecology",
        "title": "Painful periods: what is normal, and when should you get checked?",
        "summary": "Period pain is common and often manageable, but pain that disrupts your life can have a "
        "treatable cause such as endometriosis.",
        "tags": ["Periods", "Women's health", "Pain relief", "Hormones"],
        "reviewed_days_ago": 55,
        "published_days_ago": 190,
        "views": 44,
        "sources": [
            ("American College of Obstetricians and Gynecologists: patient resources", "https://www.acog.org/"),
            NICE,
            NHS,
        ],
        "body": """Cramping pain in the lower tummy, sometimes spreading to the back and thighs, is common in
the first days of a period. It happens when the womb muscle contracts to shed its lining.

## What helps with ordinary period pain?

- Anti-inflammatory painkillers such as ibuprofen or naproxen, started at the first sign of pain
  and taken regularly for a day or two, if they are safe for you.
- A heat pad or hot water bottle on the tummy.
- Gentle exercise such as walking, swimming or yoga.
- Hormonal contraception, such as the combined pill or a hormonal coil, often makes periods
  lighter and less painful.

## What is not normal?

Talk to a doctor if:

- pain stops you going to work, school or doing daily activities, even with painkillers;
- periods have become more painful than they used to be;
- you have pain between periods or during or after sex;
- periods are very heavy (changing protection every one to two hours, or passing large clots);
- you bleed between periods or after sex.

## What could be causing it?

- **Endometriosis:** tissue similar to the womb lining grows elsewhere in the pelvis. It often
  takes years to be diagnosed, so describe your symptoms clearly.
- **Adenomyosis:** the lining grows into the womb muscle.
- **Fibroids:** non-cancerous growths in the womb.
- **Pelvic infection**, which needs prompt treatment.

## What will the doctor do?

They will ask about your periods and may suggest a pelvic examination, swabs or an ultrasound
scan. A symptom diary of pain, bleeding and painkiller use over two or three cycles is very useful.

## When is pain urgent?

Get emergency help for sudden severe pain in the lower tummy, especially if you could be pregnant,
feel faint, or have a high temperature.
""",
    },
    {
        "slug": "high-blood-pressure-basics",
        "specialty": "cardiology",
        "title": "High blood pressure: what do the numbers mean and what lowers them?",
        "summary": "High blood pressure rarely causes symptoms but raises the risk of stroke and heart attack. "
        "How it is measured and what brings it down.",
        "tags": ["Heart", "Blood pressure", "Prevention"],
        "reviewed_days_ago": 35,
        "published_days_ago": 280,
        "views": 52,
        "sources": [
            ("World Health Organization: hypertension fact sheet", "https://www.who.int/news-room/fact-sheets"),
            ("American Heart Association", "https://www.heart.org/"),
            ("European Society of Cardiology", "https://www.escardio.org/"),
            NICE,
        ],
        "body": """Blood pressure is the force of blood against the walls of your arteries. It is written as two
numbers, for example 128/82 mmHg.

## What do the two numbers mean?

- The **top (systolic)** number is the pressure when the heart beats.
- The **bottom (diastolic)** number is the pressure when the heart rests between beats.

Clinic readings of 140/90 or above, confirmed by home or 24-hour measurements, usually count as
high blood pressure. Targets differ a little between guidelines and with age.

## Why does it matter if I feel fine?

High blood pressure rarely causes symptoms, but over years it strains the heart, blood vessels,
kidneys and eyes. It is one of the main causes of stroke, heart attack and heart failure that
can be changed.

## How should I measure it at home?

- Use a validated upper-arm monitor with the right cuff size.
- Sit quietly for five minutes, back supported, feet flat, arm resting at heart level.
- Take two readings a minute apart, morning and evening, for about a week.
- Write the results down and take them to your appointment.

## What lowers blood pressure?

- Eating less salt: aim for under 5 g (about a teaspoon) a day, including salt in bread and
  ready meals.
- Eating more vegetables, fruit, pulses and whole grains.
- Regular activity: about 150 minutes a week of brisk walking or similar.
- Losing weight if you are overweight.
- Keeping alcohol within low-risk limits, and stopping smoking.

If lifestyle changes are not enough, or your risk is high, medicines are safe and effective;
many people need two or more.

## When is it an emergency?

A very high reading (around 180/120 or more) with chest pain, breathlessness, severe headache,
confusion, weakness or problems with vision or speech needs emergency help now.
""",
    },
    {
        "slug": "palpitations-when-to-get-checked",
        "specialty": "cardiology",
        "title": "Palpitations: when does a racing heart need a check-up?",
        "summary": "Feeling your heart pound or flutter is common and often harmless. The triggers, the tests "
        "and the warning signs.",
        "tags": ["Heart", "Anxiety"],
        # Left in review so the demo shows the workflow: another doctor can publish it.
        "status": ArticleStatus.IN_REVIEW,
        "views": 0,
        "sources": [
            ("American Heart Association", "https://www.heart.org/"),
            NHS,
        ],
        "body": """Palpitations are the feeling that your heart is pounding, fluttering, racing or skipping a
beat. They can last seconds or minutes and are very common.

## What usually causes them?

- Exercise, stress, anxiety or panic.
- Caffeine, alcohol, nicotine and some recreational drugs.
- Some medicines, such as certain asthma inhalers and decongestants.
- Hormonal changes in pregnancy or around the menopause.
- Extra beats (ectopic beats), which are usually harmless.

Less often, they come from a heart rhythm problem such as atrial fibrillation, an overactive
thyroid or anaemia.

## What can I do myself?

- Cut down on caffeine and alcohol, and stop smoking.
- Notice what you were doing when they started, and keep a short diary.
- Try slow breathing: in for four seconds, out for six.

## What tests might a doctor suggest?

- An electrocardiogram (ECG), ideally recorded during an episode.
- A portable ECG monitor worn for one or more days, or a small event recorder.
- Blood tests for anaemia, thyroid function and salts such as potassium.
- Sometimes an ultrasound scan of the heart.

## When should I see a doctor?

- Palpitations are frequent, last a long time or are getting worse.
- You have heart disease, or a close relative died suddenly at a young age.
- The pulse feels irregular at rest.

## When is it an emergency?

Call your local emergency number if palpitations come with chest pain, severe breathlessness,
fainting or near-fainting.
""",
    },
]


def _doctors_for(value) -> list[DoctorProfile]:
    if value is None:
        return []
    if isinstance(value, DoctorProfile):
        return [value]
    return [doctor for doctor in value if doctor is not None]


def _pick_author_and_reviewer(
    specialty_slug: str, doctors: Mapping[str, list[DoctorProfile]]
) -> tuple[DoctorProfile, DoctorProfile | None] | None:
    own = doctors.get(specialty_slug) or []
    if not own:
        return None
    author = own[0]
    # As an editorial board would: a colleague of the article's own specialty reviews it,
    # never a doctor of an unrelated one. Without one the article waits in review.
    reviewer = next((doctor for doctor in own[1:] if doctor.pk != author.pk), None)
    return author, reviewer


def _tags(names: Iterable[str]) -> list[Tag]:
    tags = []
    for name in names:
        tag, _ = Tag.objects.get_or_create(slug=slugify(name), defaults={"name": name})
        tags.append(tag)
    return tags


def _set_sources(article: Article, sources: Sequence[tuple[str, str]]) -> None:
    wanted = [(title, url) for title, url in sources]
    if list(article.sources.values_list("title", "url")) == wanted:
        return
    article.sources.all().delete()
    Source.objects.bulk_create(
        Source(article=article, title=title, url=url, position=position) for position, (title, url) in enumerate(wanted)
    )


def _seed_views(article: Article, per_day: int, now: datetime) -> None:
    """A few weeks of plausible view counts so "most popular" has something to rank."""
    if per_day <= 0 or article.view_days.exists():
        return
    today = now.date()
    rows = [
        ArticleViewDay(article=article, day=today - timedelta(days=offset), views=max(1, per_day - offset % 7))
        for offset in range(21)
    ]
    ArticleViewDay.objects.bulk_create(rows)
    article.view_count = sum(row.views for row in rows)
    article.save(update_fields=["view_count"])


@transaction.atomic
def seed_articles(doctors_by_specialty_slug: Mapping, now: datetime) -> int:
    """Create or update the demo articles; safe to run again and again.

    Contract (for the seed_demo command):
    - `doctors_by_specialty_slug` maps a Specialty slug ("general-medicine",
      "dermatology", "plastic-surgery", "orthopedics", "psychiatry",
      "pediatrics", "gynecology", "cardiology") to a DoctorProfile or a list
      of them. The Specialty rows must already exist; articles whose
      specialty slug is missing from the mapping or the database are skipped.
    - The first doctor of a specialty is the author; the reviewer is the next
      doctor of the same specialty (never the author, never a doctor of another
      specialty). A specialty with a single doctor keeps its articles "in
      review" instead of publishing them (nobody may review their own).
    - `now` (aware datetime) anchors the published / reviewed dates. One
      article ("cold-or-flu-how-to-tell") is created with an expired review so
      the overdue sweep has something to flag; one ("palpitations-when-to-get-
      checked") is left in review for the workflow demo.
    - Articles are looked up by slug. A new one gets its dates, reviewer and
      a few weeks of view counts; an existing one only gets its text, tags and
      sources refreshed, so workflow changes made in the admin are kept.
    Returns how many articles were created or updated.
    """
    doctors = {slug: _doctors_for(value) for slug, value in doctors_by_specialty_slug.items()}
    specialties = Specialty.objects.in_bulk(list(doctors), field_name="slug")
    seeded = []
    for spec in ARTICLES:
        specialty = specialties.get(spec["specialty"])
        people = _pick_author_and_reviewer(spec["specialty"], doctors)
        if specialty is None or people is None:
            continue
        author, reviewer = people
        content = {
            "title": spec["title"],
            "summary": spec["summary"],
            "body_markdown": spec["body"],
            "specialty": specialty,
        }
        article = Article.objects.filter(slug=spec["slug"]).first()
        if article is None:
            article = Article(slug=spec["slug"], author=author, **content)
            status = spec.get("status", ArticleStatus.PUBLISHED)
            if status == ArticleStatus.PUBLISHED and reviewer is not None:
                reviewed_at = now - timedelta(days=spec["reviewed_days_ago"])
                article.reviewer = reviewer
                article.reviewed_at = reviewed_at
                article.next_review_due_at = next_review_due(reviewed_at)
                article.published_at = now - timedelta(days=max(spec["published_days_ago"], spec["reviewed_days_ago"]))
                article.status = ArticleStatus.PUBLISHED
            else:
                article.status = ArticleStatus.IN_REVIEW
                article.submitted_at = now - timedelta(days=2)
            article.save()
            _seed_views(article, spec.get("views", 0), now)
        else:
            for field, value in content.items():
                setattr(article, field, value)
            article.save()
        article.tags.set(_tags(spec["tags"]))
        _set_sources(article, spec["sources"])
        seeded.append(article)
    bump_version()
    return len(seeded)
