"""Chinese names for the synthetic county.

Every character here must encode in GBK: the health bureau's file is written in GBK.
"""

from __future__ import annotations

import random

# Common surnames, most frequent first; the weights fall off roughly like the national shares.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_WEIGHTS = tuple(1.0 / (i + 8) for i in range(len(SURNAMES)))

MALE_CHARS = (
    "伟强磊军勇杰涛明超华平刚辉建国文斌林波鹏志海峰宇浩"
    "俊凯成龙飞荣兵东福贵财德良忠学永祥发顺有光云金生亮新"
)
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀英华玲萍红燕梅琳兰凤珍莉雪婷倩慧琴桂春翠月美欣悦佳怡"


def surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, weights=_SURNAME_WEIGHTS)[0]


def given_name(rng: random.Random, male: bool) -> str:
    chars = MALE_CHARS if male else FEMALE_CHARS
    if rng.random() < 0.35:
        return rng.choice(chars)
    return rng.choice(chars) + rng.choice(chars)


def full_name(rng: random.Random, male: bool, family: str | None = None) -> str:
    return (family or surname(rng)) + given_name(rng, male)
